from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('recall_calendar', '0004_bot_call_retries'),
    ]

    operations = [
        migrations.RenameField(
            model_name='lease',
            old_name='expires_at',
            new_name='taken_at',
        ),
        migrations.AlterField(
            model_name='lease',
            name='taken_at',
            field=models.DateTimeField(verbose_name='taken or renewed at'),
        ),
        migrations.AddIndex(
            model_name='calendarevent',
            index=models.Index(condition=models.Q(('bot_retry_at__isnull', False)), fields=['bot_retry_at'], name='recall_evt_bot_retry'),
        ),
    ]
