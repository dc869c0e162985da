"""A whole StreetWatch installation on one machine: ``streetwatch demo`` and the local Mosquitto
it starts (the tests and benchmarks start it too). It uses every role, so it sits beside them,
not in the shared contract ``streetwatch/``."""
