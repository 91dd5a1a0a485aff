"""The three administrators' work (三员分立), one implementation for the portal consoles,
the ``/api/v1/admin`` API and, where the CLI does the same thing, ``govgate``:

    console.py        Console: who acts, the role their console needs, the departments
                      they may touch, and the audit trail of what they do
    (gateway.department_scope: an admin's department and those below it, or every
    department for a province-level admin; below this package, delegations use it)
    trail.py          Trail: every action audited with its before and after values
                      (never a secret), every refusal audited
    sysadmin.py       系统管理员: users, departments, systems, clients
    secadmin.py       安全管理员: policy lines and the decision test, grants, keys,
                      the password and session policy (read from the settings)
    activity.py       审计管理员: what the other two admins did
    clients.py        client registration, secrets, status (also ``govgate client``)
    systems.py        systems through the state file's own section
    policy_lines.py   checks of a new policy line, the decision test's subjects
                      (also ``govgate policy``)
    keys.py           key rotation (also ``govgate keys rotate``)
"""
