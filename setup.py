"""Only for the optional native relay; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "chaos_mcp.faults.proxy._relay",
            sources=["chaos_mcp/faults/proxy/_relay.c", "chaos_mcp/faults/proxy/_sockmap.c"],
            depends=["chaos_mcp/faults/proxy/_sockmap.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
