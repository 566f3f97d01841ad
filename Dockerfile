# BankSim application image: web (gunicorn), Celery worker and beat all run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BANKSIM_VAR_DIR=/app/var \
    DJANGO_SETTINGS_MODULE=banksim.settings.production

WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .

# Static files are part of the image; WhiteNoise serves them from $BANKSIM_VAR_DIR/static.
# The local settings need no secret, and collectstatic touches no database.
RUN DJANGO_SETTINGS_MODULE=banksim.settings.local python manage.py collectstatic --noinput \
    && mkdir -p /app/var/beat \
    && useradd --system --uid 10001 --home-dir /app banksim \
    && chown -R banksim:banksim /app/var

USER banksim
EXPOSE 8000

CMD ["gunicorn", "banksim.launcher:wsgi_application()", "--bind", "0.0.0.0:8000", \
     "--workers", "3", "--access-logfile", "-"]
