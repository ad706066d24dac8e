// A checkpoint's neuron groups and sizes: neurons per group, the synapses leaving each group and their
// weight range. Group 0 holds the inputs; the outputs have no outgoing synapses (cypher/schema.md: a group
// is a set of neurons one value of the network holds, a weight layer joins two groups).
// In Neo4j Browser run the :param lines, then the query. On the command line (either backend):
//   netarchive query cypher -f cypher/checkpoint_layers.cypher --param run=r1 --param level=0
:param run => 'r1';
:param level => 0;

MATCH (n:Neuron {run: $run, level: $level})
OPTIONAL MATCH (n)-[s:SYNAPSE]->()
RETURN n.`group` AS `group`, count(DISTINCT n) AS neurons, count(s) AS synapses_out,
       min(s.w) AS min_w, max(s.w) AS max_w
ORDER BY `group`;
