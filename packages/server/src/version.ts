/** The relay's version: in /api/v1/info, the OpenAPI document and `agentmesh --version`. */
export const VERSION = '0.2.0'
