"""The image models (testkit.image_models) as V2 model servers run them: MLServer custom
runtimes (mlserver_image) and a KServe model server (kserve_image). Each module runs inside
its server's own virtual environment, with the repository root on PYTHONPATH."""
