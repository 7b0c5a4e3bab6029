"""Search spaces: the YAML depth-and-width spaces, validated once into a `SearchSpace` that samples
architecture specs (`robustarch.models`) with their training settings (`robustarch.training`).

    space = load_space("digits-cells")
"""

from .space import SearchSpace, load_space

__all__ = ["SearchSpace", "load_space"]
