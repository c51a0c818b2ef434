"""Business logic between the HTTP layer and the tables."""
