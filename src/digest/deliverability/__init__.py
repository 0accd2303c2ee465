"""``digest check``: the deliverability self-test, each check a finding with its fix."""
