"""Stock movements are append-only in the database itself, like the audit log."""

from django.db import migrations

from shequn.core.dbguards import install_append_only_guards, remove_append_only_guards


def install(apps, schema_editor):  # type: ignore[no-untyped-def]
    install_append_only_guards(schema_editor.connection, ("catalog_stockmovement",))


def remove(apps, schema_editor):  # type: ignore[no-untyped-def]
    remove_append_only_guards(schema_editor.connection, ("catalog_stockmovement",))


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial"), ("core", "0002_audit_append_only")]

    operations = [migrations.RunPython(install, remove)]
