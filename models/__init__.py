"""Model code, not binaries: task specs, the model artifact, scoring, explanations, the registry."""
