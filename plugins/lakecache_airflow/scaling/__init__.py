"""Autoscaling of the compute cluster: a pure policy, scaler backends, demand readers, a simulator and ``clusterctl``.

- ``base``: the ``Scaler`` protocol every backend implements, ``ClusterState``, ``ScaleResult`` and the errors.
- ``spark_standalone``: a Spark standalone cluster run as local processes; scale-in decommissions workers.
- ``aws_asg`` / ``aws_emr``: an EC2 Auto Scaling group, an EMR instance group (boto3); ``aws``: what they share.
- ``retry``: the backoff every backend retries throttling and capacity errors with.
- ``policy``: ``PolicyConfig`` (validated at load) and ``decide()``, a pure function from time, state and demand.
- ``demand``: waiting applications and cores from the Spark master, cache pressure from the cache admin API.
- ``backends``: which scaler a config (or ``--backend``) names.
- ``simulate``: replays days of load against static and dynamic sizings; writes ``docs/autoscaling.md``.
- ``cli``: ``clusterctl status | plan | scale --to N``.
"""
