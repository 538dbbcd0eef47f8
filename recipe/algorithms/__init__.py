"""Pure selection and dedupe algorithms over arrays: arrays in, indices or labels out.

Each is tested against an independent reference and benchmarked alone (bench/).
"""
from .facility_location import facility_location, facility_objective
from .kcenter import kcenter_greedy
from .diversity import deita_filter, instag_cfds, lift_variety
from .minhash import minhash_clusters, minhash_signatures, lsh_params
from .clusters import connected_labels, semantic_clusters
from .semdedup import cell_semantic_clusters

__all__ = ["facility_location", "facility_objective", "kcenter_greedy", "deita_filter", "instag_cfds",
           "lift_variety", "minhash_clusters", "minhash_signatures", "lsh_params", "connected_labels",
           "semantic_clusters", "cell_semantic_clusters"]
