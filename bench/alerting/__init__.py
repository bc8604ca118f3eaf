"""A fleet day replayed through Prometheus's rule engine and a real Alertmanager, for issue #15's headline figure.

``fleet`` says which hosts run when (the autoscaler's day), ``incidents`` what goes wrong, ``series`` what their
metrics read minute by minute, ``first_generation`` the hand-written baseline configuration, ``engine`` evaluates
rules with Prometheus on the backfilled series, ``notify`` replays the alerts through Alertmanager to a counting
webhook, and ``scoring`` says which incidents were paged and what paged for churn alone.
"""
