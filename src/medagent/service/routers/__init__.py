"""One router per area of the service."""
