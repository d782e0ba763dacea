"""Point-in-time customer features: the events contract, pure feature code and the store."""
