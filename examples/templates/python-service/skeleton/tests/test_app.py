from ${{ values.packageName }}.app import greet


def test_greet() -> None:
    assert greet("you") == "Hello from ${{ values.name }}, you!"
