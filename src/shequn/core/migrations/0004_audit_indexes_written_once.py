"""Audit indexes written once per event: no LIKE twin for ``action``, actors only where set.

On SQLite, altering a field rebuilds the table, and the rebuilt table has none of the
append-only triggers of migration 0002: they are installed again at the end (on PostgreSQL
the triggers survive and are simply replaced).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from shequn.core.dbguards import install_append_only_guards


def reinstall_guards(apps, schema_editor):  # type: ignore[no-untyped-def]
    install_append_only_guards(schema_editor.connection, ("core_auditevent",))


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_webhook_nonce"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["action"], name="audit_action_idx"),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("actor__isnull", False)),
                fields=["actor"],
                name="audit_actor_idx",
            ),
        ),
        migrations.RunPython(reinstall_guards, migrations.RunPython.noop),
    ]
