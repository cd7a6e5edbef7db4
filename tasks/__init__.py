"""Task definitions (YAML + frozen manifests), installed as ``serbench.task_definitions``."""
