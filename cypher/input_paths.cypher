// The paths from one input pixel (channel, y, x) to the output layer: every chain of surviving
// synapses that carries that pixel to an output. Their number grows with the product of the layer
// degrees, so keep $limit small on dense checkpoints. $depth is the number of weight layers
// (the length of every input-to-output path; see checkpoint_layers.cypher).
//   netarchive query cypher -f cypher/input_paths.cypher --param run=r1 --param y=3 --param x=4 --param depth=3
:param run => 'r1';
:param level => 0;
:param channel => 0;
:param y => 0;
:param x => 0;
:param depth => 3;
:param limit => 25;

MATCH path = (p:Neuron {run: $run, level: $level, layer: 0, channel: $channel, y: $y, x: $x})-[:SYNAPSE*1..10]->(o:Neuron)
WHERE o.layer = $depth
RETURN path, o.`index` AS output, length(path) AS hops
LIMIT $limit;
