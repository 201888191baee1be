"""Patient-data protection: sealed packages, audit trail, encryption at rest, PQ link, de-id."""
