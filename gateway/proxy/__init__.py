"""The policy-enforcing reverse proxy: admission (route, caller, scope, policy,
catalogue), forwarding to upstreams, shaping responses, forward-auth."""
