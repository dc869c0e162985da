"""Cases: the dispatch workflow (states and transitions) and the service that changes cases."""
