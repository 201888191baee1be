"""medagent: clinical decision support agent built on declarative clinical scales."""

from medagent.errors import InputError, MedAgentError, ScaleDefinitionError

__version__ = "0.1.0"

__all__ = ["InputError", "MedAgentError", "ScaleDefinitionError", "__version__"]
