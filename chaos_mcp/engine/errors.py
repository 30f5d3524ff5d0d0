"""The engine's refusals: one root, safe to show to an agent."""


class EngineError(Exception):
    """A request the engine refuses; the message is safe to show and says what to do."""
