"""The payments service."""


def greet(name: str) -> str:
    return f"Hello from payments, {name}!"
