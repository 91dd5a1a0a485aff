"""Break-glass (紧急授权): a named, short emergency access to one system (or one
catalogue resource on it), granted by two different security administrators, marked
in tokens, assertions, the portal and every audit record of its use, and reviewed by
the audit administrator afterwards (docs/break-glass.md).

    tables   break_glass, break_glass_approvals
    active   ActiveBreakGlass: the active ones, cached for the proxy and the token issuer
    desk     BreakGlassDesk: request, approve, end, the review queue, close with a finding
"""
