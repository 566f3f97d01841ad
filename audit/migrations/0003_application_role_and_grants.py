"""The application's database role, ``banksim_app``, and what it may do.

Production runs the web and worker processes as a login role that is a member of
``banksim_app`` and migrates as the owner of the tables (docs/operations.md). The application
role may read and write the business tables, but on the audit log it may only SELECT and
INSERT: no UPDATE, DELETE or TRUNCATE, so even a compromised application cannot rewrite what
the log says. Sealing goes through the SECURITY DEFINER function ``audit_seal``, and the chain
head is read-only to the application.

``ALTER DEFAULT PRIVILEGES`` gives the role the same rights on tables later migrations create
(when they run as the same owner). The role is cluster-wide and other databases (test
databases, a second environment) may use it, so it is created if missing and never dropped.
"""

from django.db import migrations

ROLE = "banksim_app"

FORWARD = rf"""
DO $$
BEGIN
    -- Checked first: an owner without CREATEROLE may migrate once an admin made the role.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
        CREATE ROLE {ROLE} NOLOGIN;
    END IF;
EXCEPTION
    -- Another database of the cluster created it at this very moment.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO {ROLE};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {ROLE};

REVOKE UPDATE, DELETE, TRUNCATE ON audit_auditlog FROM {ROLE};
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_auditchainhead FROM {ROLE};
GRANT EXECUTE ON FUNCTION audit_seal(integer) TO {ROLE};
"""

REVERSE = rf"""
REVOKE EXECUTE ON FUNCTION audit_seal(integer) FROM {ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE USAGE, SELECT, UPDATE ON SEQUENCES FROM {ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {ROLE};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ROLE};
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE};
REVOKE USAGE ON SCHEMA public FROM {ROLE};
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers_and_seal_function")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
