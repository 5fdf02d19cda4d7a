# flake8: noqa

# import apis into api package
from chaos_client.api.availability_api import AvailabilityApi
from chaos_client.api.cluster_api import ClusterApi
from chaos_client.api.health_api import HealthApi
from chaos_client.api.plugins_api import PluginsApi
from chaos_client.api.scenarios_api import ScenariosApi
from chaos_client.api.security_api import SecurityApi

