"""LDAP / Active Directory (docs/directory.md): people whose account lives in the
directory sign in by a bind as themselves, and a sync maps OUs to departments, groups
to roles and disabled accounts to disabled users, through the state file's code.

The package sits in the wiring layer: the sync applies its plan with
``gateway.statefile.StateApplier``."""

from gateway.directory.client import DirectoryClient, Person
from gateway.directory.config import DirectoryConfig
from gateway.directory.errors import DirectoryUnavailable, SyncConflict
from gateway.directory.sync import SyncPlan, sync

__all__ = ["DirectoryClient", "DirectoryConfig", "DirectoryUnavailable", "Person",
           "SyncConflict", "SyncPlan", "sync"]
