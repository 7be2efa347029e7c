"""Asset checks: audits that reconcile row counts between layers."""
