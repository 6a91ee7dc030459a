"""Audit events are append-only in the database itself: UPDATE and DELETE fail even in raw SQL."""

from django.db import migrations

from shequn.core.dbguards import install_append_only_guards, remove_append_only_guards


def install(apps, schema_editor):  # type: ignore[no-untyped-def]
    install_append_only_guards(schema_editor.connection, ("core_auditevent",))


def remove(apps, schema_editor):  # type: ignore[no-untyped-def]
    remove_append_only_guards(schema_editor.connection, ("core_auditevent",))


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
