// Graph Data Science: Louvain communities of the projected checkpoint $graph (gds_project.cypher),
// weighted by |w|: how many, the modularity of the partition and the size of the largest community.
//   netarchive query cypher -f cypher/gds_louvain.cypher
:param graph => 'netarchive';

CALL gds.louvain.stats($graph, {relationshipWeightProperty: 'strength'})
YIELD communityCount, modularity, communityDistribution
RETURN communityCount AS communities, modularity, communityDistribution.max AS largest;
