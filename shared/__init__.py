"""What the gateway and the matcher agree on: settings, result codes, job contracts, schema."""
