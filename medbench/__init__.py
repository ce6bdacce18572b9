"""medbench: a pytest-native harness for MedAgentBench-style medical agent evaluation."""

__version__ = "0.1.0"
