"""The ${{ values.name }} service."""


def greet(name: str) -> str:
    return f"Hello from ${{ values.name }}, {name}!"
