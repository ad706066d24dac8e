// The subgraph around one neuron: every synapse into and out of neuron $neuron of layer $layer.
// In Neo4j Browser this draws the neuron with its in- and out-neighbours; double-click a neighbour
// to expand further.
//   netarchive query cypher -f cypher/neuron_neighbourhood.cypher --param run=r1 --param layer=1 --param neuron=0
:param run => 'r1';
:param level => 0;
:param layer => 1;
:param neuron => 0;

MATCH (n:Neuron {run: $run, level: $level, layer: $layer, `index`: $neuron})-[s:SYNAPSE]-(m:Neuron)
RETURN n, s, m, m.layer AS neighbour_layer, m.`index` AS neighbour, s.w AS w
ORDER BY neighbour_layer, neighbour;
