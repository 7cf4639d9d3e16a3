from payments.app import greet


def test_greet() -> None:
    assert greet("you") == "Hello from payments, you!"
