"""The HTTP gateway: parses and checks requests, asks the matchers, answers JSON."""
