"""Postings and ledger transactions are append-only, even for raw SQL (a correction is a new,
reversing transaction)."""

from django.db import migrations

from shequn.core.dbguards import install_append_only_guards, remove_append_only_guards

TABLES = ("referrals_ledgertransaction", "referrals_posting")


def install(apps, schema_editor):  # type: ignore[no-untyped-def]
    install_append_only_guards(schema_editor.connection, TABLES)


def remove(apps, schema_editor):  # type: ignore[no-untyped-def]
    remove_append_only_guards(schema_editor.connection, TABLES)


class Migration(migrations.Migration):
    dependencies = [("referrals", "0001_initial"), ("core", "0002_audit_append_only")]
    operations = [migrations.RunPython(install, remove)]
