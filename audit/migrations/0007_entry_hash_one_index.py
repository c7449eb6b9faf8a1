"""One index on the entry hash instead of two.

``unique=True`` on a text column also builds, on PostgreSQL, a
``varchar_pattern_ops`` index for LIKE queries; nothing searches hashes by
pattern, yet every append paid for it under the chain head's lock. A unique
constraint keeps the guarantee with the one index.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0006_append_many_function"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditentry",
            name="hash",
            field=models.CharField(max_length=64),
        ),
        migrations.AddConstraint(
            model_name="auditentry",
            constraint=models.UniqueConstraint(fields=("hash",), name="audit_entry_hash_unique"),
        ),
    ]
