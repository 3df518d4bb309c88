"""The gRPC server around the decision engine: config, rules store, hot reload, services.

Entry points: ``server.app.create_server`` / ``server.app.serve``, ``server.config.ServerConfig``,
``server.rules.sqlite.RulesStore``. ``python -m server`` runs a server configured from DECIDE_*
environment variables.
"""
