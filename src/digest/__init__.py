"""digest: newsletter subscriptions and digest mailer for news sites."""

__version__ = "0.1.0"
