"""Search spaces: describe points and build them through hwnas.graph.

Importing this package registers the model-name families the spaces resolve (``mbv2:<arch>``,
``nb201:<arch>``) with ``hwnas.graph.models.register_model_family``; the spaces themselves (and torch) are
imported only when such a name is resolved.
"""

from hwnas.graph.models import register_model_family

register_model_family("mbv2", "hwnas.spaces.mbv2:resolve_name")
register_model_family("nb201", "hwnas.spaces.nb201:resolve_name")
