// A checkpoint's layers and sizes: neurons per layer, the synapses leaving each layer and their
// weight range. Layer 0 holds the inputs; the last layer has no outgoing synapses.
// In Neo4j Browser run the :param lines, then the query. On the command line (either backend):
//   netarchive query cypher -f cypher/checkpoint_layers.cypher --param run=r1 --param level=0
:param run => 'r1';
:param level => 0;

MATCH (n:Neuron {run: $run, level: $level})
OPTIONAL MATCH (n)-[s:SYNAPSE]->()
RETURN n.layer AS layer, count(DISTINCT n) AS neurons, count(s) AS synapses_out,
       min(s.w) AS min_w, max(s.w) AS max_w
ORDER BY layer;
