"""One request's exchange, its tokens and cost, and the one log row it becomes."""
