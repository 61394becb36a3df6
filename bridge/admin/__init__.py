"""What operators can do to a running bridge: the admin API's operations, routing reloads."""
