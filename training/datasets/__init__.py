"""Dataset tools: taxonomy, importers, merge with near-duplicate grouping, group-aware split,
YOLO writer, stats, and the public dataset catalog.

Entry points for other code:

* :func:`training.datasets.taxonomy.load_taxonomy` - ``datasets/classes.yaml`` as typed objects.
* :func:`training.datasets.importers.import_dataset` - one dataset in any format -> our classes.
* :func:`training.datasets.build.build_yolo_dataset` - several sources -> one YOLO training set.

Modules import their heavy dependencies (OpenCV, Pillow, matplotlib) themselves; importing this
package is cheap.
"""
