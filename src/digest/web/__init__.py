"""The public web app: subscribe, confirm, unsubscribe, preferences, archive, health."""
