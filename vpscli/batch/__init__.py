"""Archive-scale batches of ``vps segment``, usable without the command line: the jobs of a batch
(:mod:`vpscli.batch.jobs`: inputs, manifests, shards), running them locally or on Ray and reporting each
outcome (:mod:`vpscli.batch.runner`), ``batch.json`` (:mod:`vpscli.batch.record`) and the Ray tasks
(:mod:`vpscli.batch.ray_backend`, :mod:`~vpscli.batch.ray_cluster`, :mod:`~vpscli.batch.ray_scoring`:
the optional ``ray`` extra)."""
