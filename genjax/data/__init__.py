"""Input pipelines: image folders and procedural panoramas, through Grain."""

from genjax.data.decode import ImageDecodeError, load_rgb
from genjax.data.folder import DataError, scan_folder
from genjax.data.pipeline import SOURCES, DatasetInfo, dataset_info, make_loader
from genjax.data.procedural import panorama

__all__ = ["make_loader", "dataset_info", "DatasetInfo", "SOURCES", "DataError",
           "ImageDecodeError", "load_rgb", "scan_folder", "panorama"]
