"""Data sources: shipped real datasets, the user's own files, and the seeded split.

Every row is identified by its integer ``row_id``, never by its position in an
array, so selections, labels and scores stay attached to the right row.
"""

from al_ray.data.files import FILE_FORMATS, load_table
from al_ray.data.shipped import SHIPPED_DATASETS, ShippedDataset, load_shipped
from al_ray.data.split import Split, make_split
from al_ray.data.types import LabeledData

__all__ = [
    "FILE_FORMATS",
    "SHIPPED_DATASETS",
    "LabeledData",
    "ShippedDataset",
    "Split",
    "load_shipped",
    "load_table",
    "make_split",
]
