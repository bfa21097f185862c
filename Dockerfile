# pitlake image: Airflow 3 + PySpark 4 (with Java 17) + Delta Lake jars + MLflow, one image for every
# service in docker-compose.yaml (Airflow components, MLflow server, Spark standalone master and worker).
#
#   docker build -t pitlake:local .        (or: docker compose build)
FROM apache/airflow:3.3.2-python3.11

# ---- OS packages (root): a Java 17 runtime for Spark, procps (`ps`) for Spark's launch scripts ----
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    # an architecture-independent JAVA_HOME (amd64 and arm64 images)
    && ln -sfn "/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)" /usr/lib/jvm/java-17-openjdk \
    && /usr/lib/jvm/java-17-openjdk/bin/java -version \
    # the code, the pre-fetched jars and the lake (a shared volume at run time) belong to airflow:0
    && install -d -o airflow -g 0 -m 2775 /opt/pitlake /opt/pitlake-jars /opt/pitlake-data
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk

# ---- Python dependencies (airflow user, into the image's ~/.local virtualenv) ----
USER airflow
# requirements.txt first: this layer is rebuilt only when the pins change.
COPY --chown=airflow:0 requirements.txt /opt/pitlake/requirements.txt
RUN pip install --no-cache-dir -r /opt/pitlake/requirements.txt

# Spark's launch scripts (spark-submit, spark-class) and jars ship inside the pyspark package.
ENV SPARK_HOME=/home/airflow/.local/lib/python3.11/site-packages/pyspark
RUN found="$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')" \
    && if [ "${found}" != "${SPARK_HOME}" ] || [ ! -x "${SPARK_HOME}/bin/spark-class" ]; then \
         echo "pyspark is at ${found}, not at SPARK_HOME=${SPARK_HOME}: fix ENV SPARK_HOME in the Dockerfile" >&2; \
         exit 1; \
       fi \
    && command -v spark-submit spark-class

# ---- the project: editable install, so pitlake.core.settings.REPO_ROOT is /opt/pitlake (jobs/, conf/) ----
COPY --chown=airflow:0 pyproject.toml README.md /opt/pitlake/
COPY --chown=airflow:0 include/ /opt/pitlake/include/
COPY --chown=airflow:0 jobs/ /opt/pitlake/jobs/
COPY --chown=airflow:0 dags/ /opt/pitlake/dags/
COPY --chown=airflow:0 plugins/ /opt/pitlake/plugins/
COPY --chown=airflow:0 conf/ /opt/pitlake/conf/
RUN pip install --no-cache-dir --no-deps -e /opt/pitlake \
    && python -c "import pitlake.core.settings as s; assert str(s.REPO_ROOT) == '/opt/pitlake', s.REPO_ROOT"

# ---- Delta Lake jars, resolved once at build time (pitlake reads them from $PITLAKE_HOME/jars) ----
# /opt/pitlake-jars keeps the image's copy; airflow-init copies it into the shared lake volume.
RUN PITLAKE_HOME=/tmp/pitlake-build python -m pitlake install-jars \
    && cp /tmp/pitlake-build/jars/*.jar /opt/pitlake-jars/ \
    && mkdir -p /opt/pitlake-data/jars \
    && cp /opt/pitlake-jars/*.jar /opt/pitlake-data/jars/ \
    && rm -rf /tmp/pitlake-build \
    && ls -l /opt/pitlake-jars

# ---- The Data Docs' CSS, JavaScript and fonts (npm registry, pinned and checked), so validation
# pages open without internet: into /opt/pitlake/.pitlake/vendor, copied into each site when built.
RUN python -m pitlake install-docs-assets

# The lake, Airflow logs, MLflow store, result files: all under the shared volume at this path.
ENV PITLAKE_HOME=/opt/pitlake-data \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/pitlake/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/pitlake/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
